"""The demo and the paper's open checks, each a small experiment on the synthetic world."""
