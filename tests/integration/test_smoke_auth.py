def test_owner_signs_in_and_sees_the_customer_list(client, auth):
    auth.login("owner")
    response = client.get("/admin/owner/customer/")
    assert response.status_code == 200
    assert "Balance" in response.get_data(as_text=True)


def test_coordinator_list_has_no_balance(client, auth):
    auth.login("coordinator")
    response = client.get("/admin/coordinator/customer/")
    assert response.status_code == 200
    assert "Balance" not in response.get_data(as_text=True)
