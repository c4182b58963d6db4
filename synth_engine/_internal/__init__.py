"""Private building blocks of the synth_engine models. Not a public API: import from ``synth_engine`` instead."""
