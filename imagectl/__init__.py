"""imagectl: build, tag, push and roll back the dbt images that Airflow runs."""

__version__ = "0.2.0"
