# Redis from Debian's packages, for machines that reach Debian's mirror but not Docker Hub (our CI).
# It stands in for the official redis image in the compose profile `scale`: the same port, data
# directory (/data) and command (redis-server).
#
#   docker build -f docker/redis.Dockerfile --build-arg BASE_IMAGE=coding-base:bookworm docker
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server > /dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]
