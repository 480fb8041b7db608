"""The run lifecycle's parts: which backend a scenario runs on, the worker drivers, live observation."""
