"""AWS VPC flow logs: parse, window and detect anomalies."""
