"""HaRry: registers approved schedules in the payroll system through its user interface.

Modules: ``schedule`` and ``exports`` (pure logic), ``sources`` (where schedules come from),
``pages`` (page objects of the payroll application), ``lanes`` (browser contexts in
parallel), ``registration`` (one schedule, checked, written, read back), ``robot`` (the
Robot), ``commands`` (``kollega harry …``). See docs/robots/harry.md.
"""
