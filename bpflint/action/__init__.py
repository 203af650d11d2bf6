"""The GitHub Action's steps (action.yml), in Python rather than in shell.

action.yml runs ``python -m bpflint.action STEP`` from the Action's private venv;
every input arrives as an environment variable (never pasted into shell code) and
every result leaves through the runner's files ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY)
and workflow commands on standard output.
"""
