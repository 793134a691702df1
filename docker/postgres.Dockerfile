# PostgreSQL from Debian's packages, for machines that reach Debian's mirror but not Docker Hub (our
# CI). It stands in for the official postgres image: the same variables (POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB), data directory (/var/lib/postgresql/data) and port.
#
#   docker build -f docker/postgres.Dockerfile --build-arg BASE_IMAGE=coding-base:bookworm docker
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 > /dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
