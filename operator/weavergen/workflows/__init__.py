"""BPMN workflows: the DMEDI cycle and the remediation strategies, run with SpiffWorkflow.

`engine` loads, validates, runs and serialises workflows whose service tasks call operators
registered in a `registry`; `generator` writes strategy workflows from a list of vocabulary
actions; `runs` starts the shipped ones. Import from those modules: this package imports none of
them, so that a phase which runs no workflow does not load SpiffWorkflow.
"""
