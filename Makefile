.PHONY: run test

# Install and run the registry on embedded defaults (web + worker); Ctrl-C stops both.
run:
	scripts/run.sh

# Install, start every service the tests need, run the whole suite, stop what was started.
test:
	scripts/test.sh
