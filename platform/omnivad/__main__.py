from omnivad.cli import main

raise SystemExit(main())
