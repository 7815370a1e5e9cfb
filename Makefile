# The two commands a new user needs (see README.md):
#   make app    install into ./.venv (first time) and open the bundled sample project
#   make test   install into ./.venv (first time) and run the test suite
.PHONY: app test setup

setup:
	@bash scripts/setup.sh

# ARGS passes options to the app, e.g. make app ARGS="--screenshot window.png"
app: setup
	@.venv/bin/python -m semid_studio.gui.system_libs --install
	.venv/bin/semid-studio $(ARGS)

test: setup
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q
