from realtime.cli import entry_point

entry_point()
