"""Pure orchestration decisions: dependency order, reconciliation, rollouts and autoscaling."""
