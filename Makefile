# The two commands a new user needs (see README.md):
#   make app    install into ./.venv (first time) and open the bundled sample project
#   make test   install into ./.venv (first time) and run the test suite
.PHONY: app test setup

setup:
	@bash scripts/setup.sh

app: setup
	.venv/bin/semid-studio

test: setup
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q
