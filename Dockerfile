FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
# pg_dump and pg_restore for `manage.py backup` / `restore`: the same major version as the
# database server in docker-compose.yml (postgres:15), from Debian's own packages.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml requirements.lock ./
COPY config ./config
COPY core ./core
COPY shop ./shop
COPY payments ./payments
COPY botbridge ./botbridge
COPY backoffice ./backoffice
COPY templates ./templates
COPY manage.py ./
RUN pip install --no-cache-dir -c requirements.lock . \
    && SECRET_KEY=build ALLOWED_HOSTS=x DATABASE_URL=sqlite:////tmp/build.db CELERY_BROKER_URL=memory:// \
       TELEGRAM_BOT_TOKEN=build TELEGRAM_WEBHOOK_SECRET=build python manage.py collectstatic --noinput \
    && useradd --create-home app \
    && mkdir -p /app/media /app/backups && chown app /app/media /app/backups
USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
