"""Lena, the home-care planning robot: tomorrow's visits allocated to the staff on duty.

``model`` describes a planning day (visits, staff, travel times, history) and validates it;
``solver`` builds the plan (OR-Tools routing, with PyVRP for plain VRPTW); ``check`` is the
independent checker of every hard constraint; ``continuity`` counts personalkontinuitet;
``formats`` reads the Solomon, HHCRSP and Kollega instance formats; ``homecare`` turns the
home-care system's JSON into a model and a plan back into JSON; ``robot`` is the robot.
"""
