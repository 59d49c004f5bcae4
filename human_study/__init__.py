"""The human experiment: per-participant trial lists, the PsychoPy runner, crash-safe response
files and simulated observers. Imports only `stimuli`; PsychoPy is imported only inside the
runner so planning, simulation and analysis work where PsychoPy is not installed."""
