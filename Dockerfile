# Switchyard's images, built from one stage that compiles the project once:
#   docker build --target api         -t switchyard-api .
#   docker build --target worker      -t switchyard-worker .        (ONNX Runtime on the CPU)
#   docker build --target worker-cuda -t switchyard-worker-cuda .   (ONNX Runtime's CUDA provider: run it with
#                                     SWITCHYARD_EXECUTION_PROVIDER=cuda on a host with the NVIDIA container toolkit)
# Models are not in any image: mount a directory of them at /models (deploy/compose.yaml, deploy/k8s). Every
# process reads its flags from SWITCHYARD_<FLAG> variables (`node dist/apps/api/src/main.js --help`).
ARG NODE_IMAGE=node:20-bookworm-slim
# onnxruntime-node 1.30's CUDA provider is built for CUDA 12 and cuDNN 9
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---- build: every dependency, then the TypeScript compiled once into dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json nest-cli.json ./
COPY libs libs
COPY apps apps
COPY migrations migrations
RUN npm run build

# ---- runtime: production dependencies only (the project's .npmrc skips onnxruntime-node's CUDA download) and dist/
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SWITCHYARD_MODEL_ID=/models/demo-small \
    SWITCHYARD_CACHE_DIR=/cache
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist dist
COPY deploy/docker/worker-id.sh deploy/docker/worker-id.sh
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home switchyard \
    && mkdir -p /models /cache && chown switchyard:switchyard /cache
USER 10001
VOLUME ["/models"]

# ---- api: the HTTP API; /health is 200 once a worker holds the default model (or, with
# SWITCHYARD_PLACE_TIMEOUT above 0, while none runs and requests wait for one)
FROM runtime AS api
ENV SWITCHYARD_HOSTNAME=0.0.0.0 SWITCHYARD_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.SWITCHYARD_PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/apps/api/src/main.js"]
# The migrations and the default model's registration run once per release, as their own container:
#   docker run ... switchyard-api node dist/apps/api/src/prepare.main.js

# ---- worker: no HTTP port; healthy while its heartbeat is live in Redis. Its id defaults to the host name
# (the container's, the pod's), so that the check can find the heartbeat.
FROM runtime AS worker
ENTRYPOINT ["deploy/docker/worker-id.sh"]
CMD ["node", "dist/apps/gpu-worker/src/main.js"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["deploy/docker/worker-id.sh", "node", "dist/apps/gpu-worker/src/healthcheck.main.js"]

# ---- cuda-deps: the production dependencies again, with onnxruntime-node's CUDA 12 provider libraries, which its
# install step downloads (the variable overrides the project's .npmrc, whose "skip" keeps CPU hosts from fetching them)
FROM ${NODE_IMAGE} AS cuda-deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm_config_onnxruntime_node_install=cuda12 npm ci --omit=dev --no-audit --no-fund \
    && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
    && npm cache clean --force

# ---- worker-cuda: the worker on NVIDIA's CUDA runtime with cuDNN; node is copied from the Node image
FROM ${CUDA_IMAGE} AS worker-cuda
ENV NODE_ENV=production \
    SWITCHYARD_EXECUTION_PROVIDER=cuda \
    SWITCHYARD_CACHE_DIR=/cache
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY package.json ./
COPY --from=cuda-deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY deploy/docker/worker-id.sh deploy/docker/worker-id.sh
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home switchyard \
    && mkdir -p /models /cache && chown switchyard:switchyard /cache
USER 10001
VOLUME ["/models"]
ENTRYPOINT ["deploy/docker/worker-id.sh"]
CMD ["node", "dist/apps/gpu-worker/src/main.js"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["deploy/docker/worker-id.sh", "node", "dist/apps/gpu-worker/src/healthcheck.main.js"]
