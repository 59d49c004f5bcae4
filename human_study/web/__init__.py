"""The online experiment: the plan exported as a static jsPsych site (`export`), the server
its pages post each trial to (`server`, writing through `store`). Importers for data collected
with other tools live in `bodyscene.human_study.importers`."""
