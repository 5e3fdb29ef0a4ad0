from gridassets.cli import main

raise SystemExit(main())
