"""Cost/quality routing for `model: auto`: a learned router, a cascade, and their evaluation.

Pure modules (no Ray, vLLM, FastAPI, torch): state, constraints, filters,
scorers, pipeline, policies, cascade, calibration, classifier, artifact,
metrics, data, live_scorer. Only `encoder` imports sentence-transformers/torch,
and only `predictor` uses it.
"""
