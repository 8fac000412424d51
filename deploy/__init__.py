"""Deploy commands, run from a checkout (not shipped in the runtime wheel).

``deploy/aws.py`` holds the AWS and Docker steps every ECS job's deploy shares;
``deploy/launches.py`` is the SpaceX launches job's command (``deploy/launches.sh``).
"""
