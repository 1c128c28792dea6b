from django.urls import path

from botbridge.sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("", views.chat, name="chat"),
    path("send/", views.send, name="send"),
    path("press/", views.press, name="press"),
    path("pay/", views.pay, name="pay"),
    path("pay-link/", views.pay_link, name="pay_link"),
    path("renew/", views.renew, name="renew"),
]
