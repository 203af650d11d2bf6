from bpflint.cli import main

raise SystemExit(main())
