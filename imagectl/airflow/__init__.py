"""The Airflow side of an environment: where the dbt DAG reads its image from, and its DAG runs.

- _base.py: the interfaces (``ImageVariable``: read, write and describe the image Variable; ``Runs``: trigger and
  follow a DAG run, read the image a run's task actually rendered);
- rest.py: Airflow's REST API (v2 for Airflow 3, v1 for Airflow 2), both interfaces;
- secretsmanager.py, ssm.py: the image Variable kept where the Amazon provider's secrets backends read it;
- stores.py: the table of Variable stores.
"""
