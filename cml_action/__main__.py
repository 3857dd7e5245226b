from cml_action.cli import main

raise SystemExit(main())
