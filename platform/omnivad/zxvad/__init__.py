"""zxVAD: zero-shot cross-domain video anomaly detection on raw frames (../shared/specs/zxvad.md)."""
