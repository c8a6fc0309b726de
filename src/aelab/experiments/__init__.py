"""Orchestration: experiments of runs. One run engine (:mod:`.engine`), its folders (:mod:`.folders`), the
run store (:mod:`.store`), experiment files -> runs (:mod:`.spec`), executors and the report
(:mod:`.experiment`), analyses of finished runs (:mod:`.analyses`)."""
