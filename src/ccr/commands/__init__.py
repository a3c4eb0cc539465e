"""The command line's parts: options made from config fields, stage commands made from the stage table.

``ccr.cli`` is the app; these modules build what it registers, so a new stage or config field reaches
the command line without a hand-written option.
"""
