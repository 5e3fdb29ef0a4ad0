"""The Celery app of a scale-out worker: `celery -A gridassets.scaleout.worker worker -Q <queues>`.

It runs dagster-celery's step task with the broker, result store and Celery settings of
GRIDASSETS_CELERY_* (the same the executor sends with). The parent imports nothing of the graph:
pool processes fork from a parent that has not opened the Delta warehouse (delta-rs refuses a
forked child of a process that used it). Each pool process loads the graph as it starts, so that
its first step (a storm's, say) does not wait seconds for the import. Workers keep the code they loaded: restart
them after a deploy.
"""

from celery.signals import worker_process_init
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from gridassets.scaleout.executor import app_args
from gridassets.settings import Settings

app = make_app(app_args(Settings.from_env()))
execute_plan = create_task(app)


@worker_process_init.connect
def _load_the_graph(**_) -> None:
    import gridassets.definitions  # noqa: F401
