"""Orchestration: experiments of runs. Experiment files -> runs (:mod:`.resolve`), the run store (:mod:`.store`), run
and experiment folders (:mod:`.folders`), the one run engine (:mod:`.engine`), executors (:mod:`.executors`),
experiments and their commands (:mod:`.jobs`), what an experiment writes over its runs
(:mod:`.outputs`), and finished runs opened from their folders (:mod:`.finished`)."""
