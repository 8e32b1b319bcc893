# Linebridge bridge image: runs as a non-root user, health-checked over gRPC health.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY bridge ./bridge
COPY drivers ./drivers
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/linebridge --create-home linebridge
USER linebridge
WORKDIR /var/lib/linebridge
# The config must set grpc.address to a non-loopback address (with TLS, or --insecure) to be reachable
# from outside the container; the default binds 127.0.0.1.
VOLUME ["/etc/linebridge", "/var/lib/linebridge"]
# State the bridge writes (audit log; OPC UA client certificates go to ~/.local/state, also under here).
ENV LINEBRIDGE__AUDIT__PATH=/var/lib/linebridge/audit
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-m", "linebridge.cli.healthcheck", "127.0.0.1:50051"]
ENTRYPOINT ["linebridge"]
CMD ["run", "-c", "/etc/linebridge/bridge.yaml"]
