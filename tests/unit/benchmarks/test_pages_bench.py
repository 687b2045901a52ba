"""The pages benchmark (benchmarks/pages.py), small and in-process: its fleet loads, every page
it measures answers with its marker, and no page's SQL grows with the fleet (the N+1 loads the
benchmark found would show here as a count in the hundreds)."""
from benchmarks.pages import ADMIN_PASSWORD, count_statements, pages, percentile, populate, summary
from berth import accounts, db
from tests.support import login

HOSTS, SERVICES, INSTANCES = 120, 300, 900  # more hosts and applications than a page holds
MOST_STATEMENTS = 30


def test_every_measured_page_answers_in_a_bounded_number_of_statements(app):
    with app.app_context():
        with db.unit_of_work():
            accounts.ensure_admin(ADMIN_PASSWORD)
        with db.engine().begin() as connection:
            names = populate(connection, HOSTS, SERVICES, INSTANCES)
    assert names["service_instances"] == INSTANCES // SERVICES
    measured = pages(names)
    counts = count_statements(app, [path for _label, path, _marker in measured])
    assert set(counts) == {path for _label, path, _marker in measured}
    assert max(counts.values()) <= MOST_STATEMENTS, counts

    client = app.test_client()
    login(client, "admin", ADMIN_PASSWORD)
    for label, path, marker in measured:
        answer = client.get(path)
        assert answer.status_code == 200, (label, answer.status_code)
        assert marker in answer.get_data(as_text=True), label


def test_the_summary_is_the_p99_of_each_page():
    figures = {label: [float(n) for n in range(1, 101)] for label in
               ("dashboard", "overview", "services", "hosts", "hosts_table", "service_page")}
    figures["overview"] = [1.0] * 98 + [70.0, 80.0]
    result = summary(figures, HOSTS, SERVICES, INSTANCES)
    assert (result["hosts"], result["services"], result["instances"]) == (HOSTS, SERVICES, INSTANCES)
    assert result["services_p99_ms"] == 99.0 and result["overview_p99_ms"] == 70.0
    assert result["dashboard_p99_ms"] == 99.0  # the slower of / and /overview
    assert percentile([5.0], 0.99) == 5.0 and percentile([1.0, 2.0], 0.5) == 1.0
