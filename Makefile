# The full test suite as CI runs it (root: the lab tests debootstrap a Debian endpoint).
.PHONY: test test-fast build
test:
	PATCHLOOP_LAB=1 PATCHLOOP_REQUIRE_ORACLES=1 go test -count=1 -timeout 60m ./...

test-fast:
	go test ./...

build:
	go build -o patchloop ./cmd/patchloop
