"""What Azure's published REST descriptions allow in the request bodies cml-action sends, restated as facts.

Sources (azure-rest-api-specs and the models generated from them in the azure-mgmt-* packages): Microsoft.Compute
`virtualMachine.json` / `ComputeRP` (VirtualMachine, StorageProfile, OSDisk, OSProfile, LinuxConfiguration,
NetworkInterfaceReference, SecurityProfile, VirtualMachineExtension), Microsoft.Network `networkInterface.json`,
`virtualNetwork.json`, `networkSecurityGroup.json`, `publicIpAddress.json`, Microsoft.Resources `resources.json`,
Microsoft.Authorization `authorization-RoleAssignmentsCalls.json`, Microsoft.DevTestLab `DTL.json` (schedules).

A schema is a dict: property name -> None (any value) | dict (a nested object) | [schema] (an array of objects).
A property the description does not define is a request Azure rejects or silently ignores: the stand-in flags it.
"""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]
ANY = None

_TRACKED = {"location": ANY, "tags": ANY, "id": ANY, "name": ANY, "type": ANY}  # every tracked ARM resource
_REF = {"id": ANY}  # SubResource

VIRTUAL_MACHINE: Schema = {
    **_TRACKED, "zones": ANY, "plan": ANY, "extendedLocation": ANY, "placement": ANY, "etag": ANY, "managedBy": ANY,
    "identity": {"type": ANY, "userAssignedIdentities": ANY},
    "properties": {
        "hardwareProfile": {"vmSize": ANY, "vmSizeProperties": ANY},
        "storageProfile": {
            "imageReference": {"id": ANY, "publisher": ANY, "offer": ANY, "sku": ANY, "version": ANY,
                               "exactVersion": ANY, "sharedGalleryImageId": ANY, "communityGalleryImageId": ANY},
            "osDisk": {"osType": ANY, "encryptionSettings": ANY, "name": ANY, "vhd": ANY, "image": ANY, "caching": ANY,
                       "writeAcceleratorEnabled": ANY, "diffDiskSettings": ANY, "createOption": ANY, "diskSizeGB": ANY,
                       "managedDisk": {"id": ANY, "storageAccountType": ANY, "diskEncryptionSet": ANY,
                                       "securityProfile": ANY},
                       "deleteOption": ANY},
            "dataDisks": ANY, "diskControllerType": ANY, "alignRegionalDisksToVMZone": ANY},
        "osProfile": {"computerName": ANY, "adminUsername": ANY, "adminPassword": ANY, "customData": ANY,
                      "windowsConfiguration": ANY, "secrets": ANY, "allowExtensionOperations": ANY,
                      "requireGuestProvisionSignal": ANY,
                      "linuxConfiguration": {"disablePasswordAuthentication": ANY, "provisionVMAgent": ANY,
                                             "patchSettings": ANY, "enableVMAgentPlatformUpdates": ANY,
                                             "ssh": {"publicKeys": [{"path": ANY, "keyData": ANY}]}}},
        "networkProfile": {"networkApiVersion": ANY, "networkInterfaceConfigurations": ANY,
                           "networkInterfaces": [{"id": ANY, "properties": {"primary": ANY, "deleteOption": ANY}}]},
        "securityProfile": {"uefiSettings": ANY, "encryptionAtHost": ANY, "securityType": ANY,
                            "encryptionIdentity": ANY, "proxyAgentSettings": ANY},
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": ANY, "storageUri": ANY}},
        "availabilitySet": _REF, "virtualMachineScaleSet": _REF, "proximityPlacementGroup": _REF,
        "priority": ANY, "evictionPolicy": ANY, "billingProfile": {"maxPrice": ANY}, "host": _REF, "hostGroup": _REF,
        "licenseType": ANY, "extensionsTimeBudget": ANY, "platformFaultDomain": ANY, "scheduledEventsProfile": ANY,
        "scheduledEventsPolicy": ANY, "userData": ANY, "capacityReservation": ANY, "applicationProfile": ANY,
        "additionalCapabilities": ANY},
}

EXTENSION: Schema = {
    **_TRACKED,
    "properties": {"forceUpdateTag": ANY, "publisher": ANY, "type": ANY, "typeHandlerVersion": ANY,
                   "autoUpgradeMinorVersion": ANY, "enableAutomaticUpgrade": ANY, "settings": ANY,
                   "protectedSettings": ANY, "suppressFailures": ANY, "protectedSettingsFromKeyVault": ANY,
                   "provisionAfterExtensions": ANY},
}

_SUBNET_PROPS: Schema = {"addressPrefix": ANY, "addressPrefixes": ANY, "networkSecurityGroup": _REF, "routeTable": _REF,
                         "natGateway": _REF, "serviceEndpoints": ANY, "serviceEndpointPolicies": ANY,
                         "delegations": ANY, "privateEndpointNetworkPolicies": ANY,
                         "privateLinkServiceNetworkPolicies": ANY, "defaultOutboundAccess": ANY, "sharingScope": ANY}

VIRTUAL_NETWORK: Schema = {
    **_TRACKED, "etag": ANY, "extendedLocation": ANY,
    "properties": {"addressSpace": {"addressPrefixes": ANY, "ipamPoolPrefixAllocations": ANY},
                   "dhcpOptions": ANY, "flowTimeoutInMinutes": ANY, "enableDdosProtection": ANY,
                   "enableVmProtection": ANY, "ddosProtectionPlan": _REF, "bgpCommunities": ANY, "encryption": ANY,
                   "privateEndpointVNetPolicies": ANY,
                   "subnets": [{"id": ANY, "name": ANY, "type": ANY, "properties": _SUBNET_PROPS}]},
}

NETWORK_SECURITY_GROUP: Schema = {**_TRACKED, "etag": ANY,
                                  "properties": {"securityRules": ANY, "flushConnection": ANY}}

PUBLIC_IP: Schema = {
    **_TRACKED, "etag": ANY, "zones": ANY, "extendedLocation": ANY, "sku": {"name": ANY, "tier": ANY},
    "properties": {"publicIPAllocationMethod": ANY, "publicIPAddressVersion": ANY, "dnsSettings": ANY,
                   "idleTimeoutInMinutes": ANY, "ipTags": ANY, "ddosSettings": ANY, "deleteOption": ANY,
                   "publicIPPrefix": _REF},
}

NETWORK_INTERFACE: Schema = {
    **_TRACKED, "etag": ANY, "extendedLocation": ANY,
    "properties": {"networkSecurityGroup": _REF, "enableAcceleratedNetworking": ANY, "enableIPForwarding": ANY,
                   "dnsSettings": ANY, "disableTcpStateTracking": ANY, "auxiliaryMode": ANY, "auxiliarySku": ANY,
                   "nicType": ANY, "workloadType": ANY, "migrationPhase": ANY,
                   "ipConfigurations": [{"id": ANY, "name": ANY, "type": ANY, "properties": {
                       "privateIPAddress": ANY, "privateIPAllocationMethod": ANY, "privateIPAddressVersion": ANY,
                       "subnet": _REF, "primary": ANY,
                       "publicIPAddress": {"id": ANY, "properties": {"deleteOption": ANY}},
                       "applicationSecurityGroups": ANY, "loadBalancerBackendAddressPools": ANY,
                       "loadBalancerInboundNatRules": ANY, "gatewayLoadBalancer": _REF}}]},
}

RESOURCE_GROUP: Schema = {**_TRACKED, "managedBy": ANY, "properties": {}}

ROLE_ASSIGNMENT: Schema = {
    "properties": {"roleDefinitionId": ANY, "principalId": ANY, "principalType": ANY, "description": ANY,
                   "condition": ANY, "conditionVersion": ANY, "delegatedManagedIdentityResourceId": ANY},
}

SCHEDULE: Schema = {
    **_TRACKED,
    "properties": {"status": ANY, "taskType": ANY, "weeklyRecurrence": ANY, "hourlyRecurrence": ANY,
                   "dailyRecurrence": {"time": ANY}, "timeZoneId": ANY, "notificationSettings": {
                       "status": ANY, "timeInMinutes": ANY, "webhookUrl": ANY, "emailRecipient": ANY,
                       "notificationLocale": ANY},
                   "targetResourceId": ANY},
}

SCHEMAS: dict[str, Schema] = {
    "virtualMachine": VIRTUAL_MACHINE, "extension": EXTENSION, "virtualNetwork": VIRTUAL_NETWORK,
    "networkSecurityGroup": NETWORK_SECURITY_GROUP, "publicIPAddress": PUBLIC_IP,
    "networkInterface": NETWORK_INTERFACE, "resourceGroup": RESOURCE_GROUP, "roleAssignment": ROLE_ASSIGNMENT,
    "schedule": SCHEDULE,
}

# dotted path (arrays are entered transparently) -> allowed values
ENUMS: dict[str, dict[str, set[Any]]] = {
    "virtualMachine": {
        "identity.type": {"SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned", "None"},
        "properties.priority": {"Regular", "Low", "Spot"},
        "properties.evictionPolicy": {"Deallocate", "Delete"},
        "properties.storageProfile.osDisk.createOption": {"FromImage", "Empty", "Attach", "Copy", "Restore"},
        "properties.storageProfile.osDisk.deleteOption": {"Delete", "Detach"},
        "properties.storageProfile.osDisk.managedDisk.storageAccountType": {
            "Standard_LRS", "Premium_LRS", "StandardSSD_LRS", "UltraSSD_LRS", "Premium_ZRS", "StandardSSD_ZRS",
            "PremiumV2_LRS"},
        "properties.networkProfile.networkInterfaces.properties.deleteOption": {"Delete", "Detach"},
        "properties.securityProfile.encryptionAtHost": {True, False},
    },
    "publicIPAddress": {"properties.publicIPAllocationMethod": {"Static", "Dynamic"}, "sku.name": {"Basic", "Standard"}},
    "networkInterface": {"properties.ipConfigurations.properties.privateIPAllocationMethod": {"Static", "Dynamic"}},
    "virtualNetwork": {"properties.subnets.properties.defaultOutboundAccess": {True, False}},
    "roleAssignment": {"properties.principalType": {"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"}},
    "schedule": {"properties.status": {"Enabled", "Disabled"}, "properties.notificationSettings.status":
                 {"Enabled", "Disabled"}},
}

REQUIRED: dict[str, list[str]] = {
    "virtualMachine": ["location", "properties.storageProfile.osDisk.createOption", "properties.hardwareProfile.vmSize"],
    "extension": ["location", "properties.publisher", "properties.type", "properties.typeHandlerVersion"],
    "virtualNetwork": ["location", "properties.addressSpace.addressPrefixes"],
    "networkSecurityGroup": ["location"],
    "publicIPAddress": ["location"],
    "networkInterface": ["location", "properties.ipConfigurations.properties.subnet"],
    "resourceGroup": ["location"],
    "roleAssignment": ["properties.roleDefinitionId", "properties.principalId"],
    "schedule": ["location", "properties.taskType", "properties.timeZoneId", "properties.targetResourceId"],
}

# api-versions by provider namespace: versions of the published stable descriptions. The versions the installed
# azure-mgmt-* packages send are published by construction (the packages are generated from those descriptions).
API_VERSIONS: dict[str, set[str]] = {
    "Microsoft.Resources": {"2019-10-01", "2020-06-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-09-01",
                            "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01"},
    "subscriptions": {"2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01"},
    "Microsoft.Compute": {"2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01",
                          "2025-04-01", "2026-04-01"},
    "Microsoft.Network": {"2023-09-01", "2023-11-01", "2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01",
                          "2024-10-01", "2025-01-01", "2025-03-01", "2025-05-01", "2025-07-01", "2026-03-01"},
    "Microsoft.Authorization": {"2020-04-01-preview", "2022-04-01"},
    "Microsoft.DevTestLab": {"2018-09-15"},
}


def namespace(path: str) -> str:
    """The provider namespace a request path addresses (the last one: extension resources sit under another)."""
    found = re.findall(r"/providers/([^/]+)/", path, flags=re.IGNORECASE)
    if found:
        return next((k for k in API_VERSIONS if k.lower() == found[-1].lower()), found[-1])
    if re.search(r"/locations$", path, flags=re.IGNORECASE):
        return "subscriptions"
    return "Microsoft.Resources"


def problems(kind: str, body: Any) -> list[str]:
    """Every way `body` departs from the published description of `kind` (empty: it conforms)."""
    found: list[str] = []
    if not isinstance(body, dict):
        return [f"{kind}: the body must be a JSON object"]
    _walk(SCHEMAS[kind], body, kind, "", found)
    for path, allowed in ENUMS.get(kind, {}).items():
        for value in _values(body, path.split(".")):
            if value not in allowed:
                found.append(f"{kind}: {path} must be one of {sorted(map(str, allowed))}, got {value!r}")
    for path in REQUIRED.get(kind, []):
        if not _values(body, path.split(".")) and _parent_present(body, path.split(".")):
            found.append(f"{kind}: {path} is required")
    return found


def _walk(schema: Schema, value: Any, kind: str, where: str, found: list[str]) -> None:
    if not isinstance(value, dict):
        found.append(f"{kind}: {where or 'body'} must be an object")
        return
    for key, item in value.items():
        if key not in schema:
            found.append(f"{kind}: unknown property {where + key!r}")
            continue
        child = schema[key]
        if child is None or item is None:
            continue
        if isinstance(child, list):
            if not isinstance(item, list):
                found.append(f"{kind}: {where + key} must be an array")
                continue
            for element in item:
                _walk(child[0], element, kind, f"{where}{key}[].", found)
        else:
            _walk(child, item, kind, f"{where}{key}.", found)


def _values(value: Any, path: list[str]) -> list[Any]:
    if not path:
        return [value]
    if isinstance(value, list):
        return [v for element in value for v in _values(element, path)]
    if isinstance(value, dict) and path[0] in value:
        return _values(value[path[0]], path[1:])
    return []


def _parent_present(body: Any, path: list[str]) -> bool:
    """A required property only counts when its enclosing object was sent (optional objects may be left out)."""
    return len(path) == 1 or bool(_values(body, path[:-1]))
