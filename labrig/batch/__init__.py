"""Many devices: a plan of substrates, pixels and measurements run one device at a time
through the switch, each device into its own run file, all linked by one batch file.

* ``plan``: the YAML plan, validated before anything is switched or enabled;
* ``runner``: ``run_batch``, the batch itself (switching, contact check, resume, progress);
* ``file``: the batch file (``read_batch``), external links to the run files and a table
  of their headline figures.
"""
