"""DAG files for the tests of the task glue: segmint's own glue over stub stages."""

from __future__ import annotations

import textwrap


def stub_dag(name: str, stages: dict[str, str], default_args: str = "") -> str:
    """A DAG file ``segmint_<name>`` whose tasks run the given pipeline stages in order,
    each replaced by a function of a stub module (``stages``: stage -> "module:function")
    and run by segmint's own task glue; ``default_args``: more of them, as Python source
    (``'"execution_timeout": timedelta(seconds=4)'``)."""
    overrides = "\n".join(f"segmint.pipeline.STAGES[{k!r}] = {v!r}" for k, v in stages.items())
    chain = " >> ".join(f"run_stage.override(task_id={k!r})({k!r})" for k in stages)
    return textwrap.dedent(
        """
        from datetime import datetime, timedelta

        from airflow.sdk import dag, task
        import segmint.pipeline
        from segmint.ops import on_task_failure, on_task_retry

        {overrides}


        @task
        def run_stage(stage: str) -> dict:
            from segmint.ops import run_stage_task

            return run_stage_task(stage)


        @dag(
            dag_id="segmint_{name}",
            schedule="@daily",
            start_date=datetime(2026, 1, 1),
            max_active_runs=1,
            default_args={{
                "retries": 2,
                "retry_delay": timedelta(seconds=1),
                "on_failure_callback": on_task_failure,
                "on_retry_callback": on_task_retry,
                {default_args}
            }},
        )
        def segmint_{name}():
            {chain}


        segmint_{name}()
        """
    ).format(overrides=overrides, name=name, chain=chain, default_args=default_args)
