# LLM Server: everyday commands. `make help` lists them; docs/deployment.md explains them.
#
# Container mode (Docker with the compose plugin): up, down, logs, ps, migrate, test-container.
# Host mode (Node 24.11+, also 22.13+ or 20.19+, and `npm ci`): test, test-e2e, test-services, bench, prod-smoke.
# No registry (Docker engine, root): base-image, image-local, test-image.

COMPOSE ?= docker compose
API_PORT ?= 8000
# Benchmarks to run (`make bench BENCH=bench/limits.ts` for one).
# (lib.ts and chart.ts are helpers; fake-upstream.ts is a server the benchmarks start.)
BENCH ?= $(filter-out bench/lib.ts bench/chart.ts bench/fake-upstream.ts,$(wildcard bench/*.ts))

.DEFAULT_GOAL := help
.PHONY: help up down logs ps migrate test test-e2e test-services test-container bench prod-smoke \
	base-image image-local test-image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# docker compose reads .env: the first `make up` writes a random ADMIN_TOKEN there (mode 600).
.env:
	@umask 077 && printf 'ADMIN_TOKEN=%s\n' "$$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))' 2>/dev/null || openssl rand -hex 32)" > .env
	@echo "wrote .env with a random ADMIN_TOKEN (keep it; it is not committed)"

up: .env ## build and start api + postgres + redis; wait until /readyz is 200 (PROFILES="ollama observability" for more)
	$(COMPOSE) $(foreach p,$(PROFILES),--profile $(p)) up -d --build --wait

down: ## stop the stack (volumes are kept; `docker compose down -v` deletes them)
	$(COMPOSE) --profile ollama --profile vllm --profile observability down

logs: ## follow the API's logs (SERVICE=postgres for another)
	$(COMPOSE) logs -f --tail=200 $(or $(SERVICE),api)

ps: ## show the stack's containers and their health
	$(COMPOSE) ps

migrate: .env ## apply pending migrations to the stack's PostgreSQL, with the image
	$(COMPOSE) run --rm --no-TTY api node dist/migration-run.js

test: ## unit and in-process API tests (host mode: PGlite, in-process stores)
	npm test

test-e2e: ## tests whose subject is a process or a program (the quickstart, README examples, Chromium, Prometheus)
	npm run test:e2e

test-services: ## both layers on the local PostgreSQL and Redis (DATABASE_URL / REDIS_URL)
	npm run test:services

test-container: .env ## the suite against the running stack (API_BASE mode; `make up` first)
	API_BASE=http://localhost:$(API_PORT) ADMIN_TOKEN="$$(sed -n 's/^ADMIN_TOKEN=//p' .env)" npm test

bench: ## run the benchmarks (results in bench/results/)
	@set -e; for f in $(BENCH); do echo "== $$f"; node -r @swc-node/register $$f; done

prod-smoke: ## the image's start path without Docker, serving the API-mode suite
	bash .ci/prod-smoke

# --- the image without a Docker registry (scripts/local-base-image.sh; docs/deployment.md) --------
LOCAL_BASE_IMAGE ?= local/node:24-bookworm-slim

base-image: ## build local/node:24-bookworm-slim from Debian and npm packages (root, debootstrap; cached)
	LOCAL_BASE_IMAGE=$(LOCAL_BASE_IMAGE) bash scripts/local-base-image.sh

image-local: base-image ## build the image llm-server on it (legacy builder, host network), without registry pulls
	DOCKER_BUILDKIT=0 docker build --network host --build-arg NODE_IMAGE=$(LOCAL_BASE_IMAGE) \
	  --build-arg npm_config_registry="$$(npm config get registry)" -t llm-server .

test-image: ## what CI does with the image: build it, run it embedded and on PostgreSQL + Redis, API-mode suite
	bash .ci/container
