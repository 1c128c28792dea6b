FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
COPY pyproject.toml requirements.lock ./
COPY config ./config
COPY shop ./shop
COPY payments ./payments
COPY botbridge ./botbridge
COPY templates ./templates
COPY manage.py ./
RUN pip install --no-cache-dir -c requirements.lock . \
    && SECRET_KEY=build ALLOWED_HOSTS=x DATABASE_URL=sqlite:////tmp/build.db CELERY_BROKER_URL=memory:// \
       TELEGRAM_BOT_TOKEN=build TELEGRAM_WEBHOOK_SECRET=build python manage.py collectstatic --noinput \
    && useradd --create-home app
USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
