"""The request-body properties Azure's published REST specifications (azure-rest-api-specs: Microsoft.Compute
ComputeRP virtualMachine.json, Microsoft.Network networkInterface.json / publicIpAddress.json /
networkSecurityGroup.json / virtualNetwork.json, Microsoft.Resources resources.json, Microsoft.Authorization
authorization-RoleAssignmentsCalls.json) define for the resources cml-action creates. Facts, restated here;
a property outside these lists is a request Azure would reject or silently ignore, so the stand-in flags it.
"""

from __future__ import annotations

TOP = {"location", "tags", "identity", "zones", "properties", "sku", "plan", "extendedLocation", "id", "name", "type",
       "etag", "managedBy"}

PROPERTIES = {
    "resourceGroup": set(),
    "networkSecurityGroup": {"securityRules", "flushConnection"},
    "virtualNetwork": {"addressSpace", "subnets", "dhcpOptions", "enableDdosProtection", "encryption",
                       "privateEndpointVNetPolicies"},
    "publicIPAddress": {"publicIPAllocationMethod", "publicIPAddressVersion", "dnsSettings", "idleTimeoutInMinutes",
                        "ipTags", "ddosSettings", "deleteOption", "publicIPPrefix"},
    "networkInterface": {"ipConfigurations", "networkSecurityGroup", "enableAcceleratedNetworking",
                         "enableIPForwarding", "dnsSettings", "auxiliaryMode", "auxiliarySku", "disableTcpStateTracking",
                         "nicType", "workloadType", "migrationPhase"},
    "virtualMachine": {"hardwareProfile", "storageProfile", "osProfile", "networkProfile", "securityProfile",
                       "diagnosticsProfile", "availabilitySet", "virtualMachineScaleSet", "proximityPlacementGroup",
                       "priority", "evictionPolicy", "billingProfile", "host", "hostGroup", "licenseType",
                       "extensionsTimeBudget", "platformFaultDomain", "scheduledEventsProfile", "userData",
                       "capacityReservation", "applicationProfile", "additionalCapabilities"},
    "extension": {"publisher", "type", "typeHandlerVersion", "autoUpgradeMinorVersion", "enableAutomaticUpgrade",
                  "settings", "protectedSettings", "forceUpdateTag", "suppressFailures", "protectedSettingsFromKeyVault",
                  "provisionAfterExtensions"},
    "roleAssignment": {"roleDefinitionId", "principalId", "principalType", "description", "condition",
                       "conditionVersion", "delegatedManagedIdentityResourceId"},
}
ENUMS = {
    ("virtualMachine", "priority"): {"Regular", "Low", "Spot"},
    ("virtualMachine", "evictionPolicy"): {"Deallocate", "Delete"},
    ("publicIPAddress", "publicIPAllocationMethod"): {"Static", "Dynamic"},
    ("roleAssignment", "principalType"): {"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"},
}
