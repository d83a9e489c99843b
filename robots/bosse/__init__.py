"""Bosse, the staffing robot: finds substitutes for open shifts within the working-time rules.

``rules`` decides who may take a shift (with reasons in Swedish), ``ranking`` orders the
eligible ones fairly and explainably, and ``contract`` is the JSON contract of
``kollega bosse match`` (``cli``). The robot itself is ``robot.Bosse``; its work, step by
step, is in ``flow`` (with ``planning``, ``ledger``, ``messages``, ``records``, ``material``
pure and ``systems`` talking to the staffing system and the SMS gateway). See
``docs/robots/bosse.md``.
"""
