# DoseReg image: one image for the web application, the Celery worker and beat, and the DICOM listener.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DOSEREG_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY manage.py ./
COPY dosereg ./dosereg
COPY dicomrx ./dicomrx
COPY triggers ./triggers
COPY drl ./drl
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir . && useradd --system --home /data dosereg && mkdir -p /data && chown dosereg /data
USER dosereg
VOLUME ["/data"]
EXPOSE 8000 11112
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')" || exit 1
CMD ["gunicorn", "dosereg.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--control-socket", "/data/gunicorn.ctl"]
