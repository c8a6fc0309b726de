"""Orchestration: experiments of runs. Experiment files -> runs (:mod:`.spec`), the run store (:mod:`.store`), run
and experiment folders (:mod:`.folders`), the one run engine (:mod:`.engine`), executors (:mod:`.executors`),
experiments and their commands (:mod:`.experiment`), what an experiment writes over its runs
(:mod:`.outputs`), and finished runs opened from their folders (:mod:`.finished`)."""
