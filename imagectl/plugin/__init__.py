"""imagectl inside Airflow 3: the "Images" page and the ``imagectl_ops`` DAG's task (docs/airflow-plugin.md).

- airflow_plugin.py: the AirflowPlugin (``pip install imagectl[airflow]`` registers it: entry point ``airflow.plugins``);
- app.py: the page and its data endpoints (FastAPI, mounted by the api-server at ``/imagectl``);
- page.py: their HTML (pure); settings.py: ``[imagectl]`` in Airflow's configuration (pure);
- inside.py: environments seen from inside Airflow (runs from its database, the Variable through the Task SDK);
- tasks.py: what ``imagectl_ops`` runs (commands/ops.py, as the triggering user).

Only airflow_plugin.py, app.py, inside.py and tasks.py import Airflow, and only when used; page.py and settings.py are
tested without it.
"""
