# One image for every agentfleet process: workers, beat, flower, migrations and the simulator.
# docker-compose.yml and deploy/ choose the process with the container's command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The packages listed in pyproject.toml's [tool.setuptools.packages.find], and the
# README that pyproject.toml names as the package description.
COPY pyproject.toml README.md /src/
COPY agentfleet /src/agentfleet
COPY agents /src/agents
COPY ledger /src/ledger
COPY producer /src/producer
COPY simulator /src/simulator
COPY workers /src/workers
RUN pip install /src && rm -rf /src

# A fixed numeric UID, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
# The home folder is the working directory: celery beat writes its schedule file there.
RUN useradd --create-home --uid 10001 --user-group agentfleet
USER 10001:10001
WORKDIR /home/agentfleet

CMD ["agentfleet", "--help"]
