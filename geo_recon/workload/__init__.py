"""Load generation: pure schedules, and the per-region workers that record histories."""
