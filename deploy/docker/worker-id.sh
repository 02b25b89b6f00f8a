#!/bin/sh
# Runs a worker command (the worker, or its health check) with the worker's id: SWITCHYARD_WORKER_ID if set, else
# the host name, which is the container's or the pod's. The worker's own default id holds its process id, which
# the health check, another process, could not know.
export SWITCHYARD_WORKER_ID="${SWITCHYARD_WORKER_ID:-$(hostname)}"
exec "$@"
