from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme


def init_admin(app):
    admin = Admin(app, name="CRM", theme=Bootstrap4Theme(swatch="cerulean"))
    return admin
