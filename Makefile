# hashgate — every entry point a newcomer needs. `make help` lists them.
#
# Everything installs what it needs itself; nothing here relies on tools installed by hand
# beyond the Rust toolchain that the machine image ships.

SHELL := /bin/bash
CARGO ?= cargo
# One target directory for every build, so nothing is compiled twice.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
# Python tools live in project-local virtual environments.
VENV := .venv
PYTHON ?= python3
# The review page's browser test drives Debian's Chromium with playwright-core (from npm,
# pinned by tests/browser/package-lock.json; it downloads no browser of its own).
CHROMIUM := /usr/bin/chromium
# The CyberTipline report schema (schemas/) is checked with libxml2's xmllint.
XMLLINT := /usr/bin/xmllint
# The AMQP ingress is tested against Debian's RabbitMQ (started by the test, on loopback).
RABBITMQ := /usr/lib/rabbitmq/bin/rabbitmq-server
# Ceph RGW is tested as a single-node cluster (scripts/ceph.sh), from Debian's packages.
RADOSGW := /usr/bin/radosgw

.PHONY: help run demo-cli test lint lint-infra fmt unit bench bench-engines bench-workers soak package package-tested deploy clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

run: venv ## The whole flow locally: stack, lists, scanner, list sync, review queue, sample uploads; Ctrl-C stops it
	$(CARGO) build -p hashgate-cli -p hashgate-scanner -p hashgate-review-api -p hashgate-hashlist-sync
	scripts/stack.sh run

demo-cli: ## The hashgate CLI alone on generated sample data (no stack)
	$(CARGO) build -p hashgate-cli
	HASHGATE=$(CARGO_TARGET_DIR)/debug/hashgate scripts/run-local.sh

test: lint lint-infra unit ## Everything CI runs: formatting, lints, template checks, every test

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: venv $(VENV)-pdq/.stamp package-tested $(CHROMIUM) $(XMLLINT) $(RABBITMQ) $(RADOSGW) tests/browser/node_modules/.stamp ## The test suites (unit, CLI end to end, multi-GiB digests, the pipeline on the local stack, the review page in Chromium)
	@mkdir -p $(CARGO_TARGET_DIR)
	# The end-to-end tests run the real binaries; cargo test builds a binary only for its
	# own package's tests, so build them all first.
	$(CARGO) build --workspace --bins
	set -o pipefail; $(CARGO) test --workspace --all-targets 2>&1 | tee $(CARGO_TARGET_DIR)/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f}' $(CARGO_TARGET_DIR)/test.log

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(XMLLINT):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils

# Installed, not started (a policy-rc.d that refuses, for the install only): the AMQP test
# runs a broker of its own, on loopback.
$(RABBITMQ):
	apt-get update -qq
	set -e; if [ ! -e /usr/sbin/policy-rc.d ]; then \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server

# Installed, not started, like RabbitMQ: the Ceph test starts a cluster of its own.
$(RADOSGW):
	apt-get update -qq
	set -e; if [ ! -e /usr/sbin/policy-rc.d ]; then \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			ceph-mon ceph-osd radosgw ceph-common curl

tests/browser/node_modules/.stamp: tests/browser/package-lock.json tests/browser/package.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	npm ci --prefix tests/browser --no-audit --no-fund
	touch $@

lint-infra: venv $(VENV)-checkov/.stamp $(VENV)-k8s/.stamp ## cfn-lint and checkov on infra/template.yaml; the Kubernetes manifests against the API's and KEDA's schemas
	$(VENV)/bin/cfn-lint infra/template.yaml
	# Suppressions are made (and justified) in the template, next to what they excuse.
	$(VENV)-checkov/bin/checkov --file infra/template.yaml --framework cloudformation --compact \
		--quiet --skip-download
	$(VENV)-k8s/bin/python scripts/check_kubernetes.py infra/kubernetes

fmt: ## Format the code
	$(CARGO) fmt --all

bench: venv ## Benchmarks side by side with their references; rewrites BENCHMARKS.md's results
	# GNU time measures each tool's peak memory; ClamAV is the reference scanner.
	@command -v /usr/bin/time >/dev/null && command -v clamscan >/dev/null && command -v openssl >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time clamav openssl; }
	$(CARGO) build --release -p hashgate-cli -p hashgate-scanner -p hashgate-review-api -p hashgate-bench
	$(CARGO_TARGET_DIR)/release/hashgate-bench --write BENCHMARKS.md

# The pipeline for minutes, two ways: on the local stack through SQS with the emulator failing
# a share of the workers' requests, and on a real Ceph RGW and RabbitMQ with the store and the
# case store paused now and then; two workers killed in turn every few seconds. Each must
# converge with one case per listed upload and every clean upload tagged (tests/e2e/soak.rs).
# Release build, so that the rates printed are the workers' and not the test build's.
SOAK_UPLOADS ?= 10000
soak: venv $(RABBITMQ) $(RADOSGW) ## 10,000 uploads on the local stack (emulator faults) and on Ceph through RabbitMQ (pauses), workers killed; release build; target/soak-*.json
	$(CARGO) build --release -p hashgate-scanner -p hashgate-cli
	HASHGATE_SOAK_UPLOADS=$(SOAK_UPLOADS) $(CARGO) test --release -p hashgate-e2e --test soak -- --ignored --nocapture --test-threads 1

bench-workers: venv $(RABBITMQ) $(RADOSGW) ## One worker's uploads per second (Ceph through RabbitMQ, the local stack through SQS) and backfill over 100,000 objects; release build; target/throughput.json, target/backfill.json
	$(CARGO) build --release -p hashgate-scanner -p hashgate-cli
	$(CARGO) test --release -p hashgate-e2e --test throughput -- --ignored --nocapture --test-threads 1

bench-engines: ## Compare embedded storage engines for the exact store (10M entries)
	$(CARGO) run --release -p hashgate-bench --features engines --bin store-engines -- 10000000

# Every function under functions/ that runs in Lambda (the CLI does not).
FUNCTIONS := scanner review-api report-sender hashlist-sync
# The zips the test suites run under the Lambda runtime emulator (tests/e2e/lambda.rs):
# `make test` packages only these (the report sender's and hashlist-sync's handlers are
# tested as libraries).
TESTED_FUNCTIONS := scanner review-api
# x86_64 or arm64: must match the template's Architecture parameter.
ARCH ?= x86_64
LAMBDA_TARGET_x86_64 := x86_64-unknown-linux-gnu
LAMBDA_TARGET_arm64 := aarch64-unknown-linux-gnu

package: venv ## Build every function as a Lambda zip: target/lambda/<function>/bootstrap.zip
	@rustup target list --installed 2>/dev/null | grep -qx '$(LAMBDA_TARGET_$(ARCH))' || { \
		echo "make package: the Rust standard library for $(LAMBDA_TARGET_$(ARCH)) is not installed;" \
			"run: rustup target add $(LAMBDA_TARGET_$(ARCH))" >&2; exit 2; }
	# cargo-lambda links with zig (from its PyPI package) against Amazon Linux 2023's glibc,
	# not this machine's, so the binary runs on provided.al2023.
	# Symbols are stripped from the deployed binary only (a quarter of its size, so a faster
	# cold start); release builds elsewhere keep their line tables.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_PROFILE_RELEASE_STRIP=symbols \
		$(VENV)/bin/cargo-lambda lambda build --release \
		--target $(LAMBDA_TARGET_$(ARCH)).2.34 --output-format zip \
		$(foreach f,$(FUNCTIONS),--bin $(f)) --lambda-dir $(CARGO_TARGET_DIR)/lambda
	@for f in $(FUNCTIONS); do ls -l $(CARGO_TARGET_DIR)/lambda/$$f/bootstrap.zip; done

# The test zips are built by the same cargo-lambda command, for the same target and glibc,
# with the release profile lightened (no LTO, no optimisation): the tests check
# the packaging and the runtime contract, not the optimiser, and the full release profile was
# the longest step of `make test`. `make package` builds what deploys.
package-tested: venv ## Build the Lambda zips the tests run (TESTED_FUNCTIONS), as make test does
	CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
		$(MAKE) --no-print-directory package FUNCTIONS="$(TESTED_FUNCTIONS)"

deploy: package ## Deploy to AWS with `sam deploy --guided` (needs AWS credentials; see README)
	@command -v sam >/dev/null || { echo "make deploy needs the AWS SAM CLI:" \
		"https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html" >&2; exit 2; }
	sam deploy --guided --template-file infra/template.yaml --capabilities CAPABILITY_IAM

clean: ## Remove build output and local state
	rm -rf $(CARGO_TARGET_DIR) .local

# --- Local AWS stack on the moto emulator, built from infra/template.yaml -------------------
# `make up` writes .local/stack.env (endpoint, dummy credentials, HASHGATE_* resource names,
# HASHGATE_REVIEW_URL) and .local/review-users.json (the local reviewers' passwords); load
# the first with `set -a; . .local/stack.env; set +a`.

.PHONY: venv up down stack-status

venv: $(VENV)/.stamp ## Python tools for the local stack (moto, boto3, cfn-lint) in .venv

$(VENV)/.stamp: scripts/requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
	touch $@

$(VENV)-checkov/.stamp: scripts/requirements-checkov.txt
	test -x $(VENV)-checkov/bin/python || $(PYTHON) -m venv $(VENV)-checkov
	$(VENV)-checkov/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-checkov.txt
	touch $@

$(VENV)-k8s/.stamp: scripts/requirements-k8s.txt
	test -x $(VENV)-k8s/bin/python || $(PYTHON) -m venv $(VENV)-k8s
	$(VENV)-k8s/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-k8s.txt
	touch $@

# The PDQ oracle (scripts/pdq_oracle.py): Meta's C++ PDQ through PyPI pdqhash, built with g++.
$(VENV)-pdq/.stamp: scripts/requirements-pdq.txt
	@command -v g++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++; }
	test -x $(VENV)-pdq/bin/python || $(PYTHON) -m venv $(VENV)-pdq
	$(VENV)-pdq/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-pdq.txt
	touch $@

up: venv ## make run in the background: stack, sample lists, scanner and list sync workers, review API; writes .local/stack.env
	$(CARGO) build -p hashgate-cli -p hashgate-scanner -p hashgate-review-api -p hashgate-hashlist-sync
	scripts/stack.sh up

down: ## Stop the review API, the scanner and list sync workers and the local AWS stack
	scripts/stack.sh down

stack-status: venv ## Is the local AWS stack up, and which of its resources exist
	$(VENV)/bin/python scripts/localstack.py status
