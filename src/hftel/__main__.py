from hftel.cli import main

raise SystemExit(main())
