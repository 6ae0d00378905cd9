from omnivad.cli import entry

entry()
