"""Pure decision logic: placement, dependency order, rollouts, autoscaling. Imports nothing from web or the database."""
