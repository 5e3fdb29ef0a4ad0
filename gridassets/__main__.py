import sys

from gridassets.settings import SettingsError

try:
    # Importing the commands loads the settings that the definitions read as they load.
    from gridassets.cli import main
except SettingsError as exc:
    print(f"gridassets: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

raise SystemExit(main())
